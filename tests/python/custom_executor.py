"""pymesos scheduler running a task under a pymesos custom executor; exits
0 once the task finished and the executor's framework message arrived
intact."""
import os
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler, decode_data

MASTER = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))


def scalar(name, value):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class WithExecutor(Scheduler):
    def __init__(self):
        self.launched = False
        self.finished = False
        self.message = None
        self.failure = None
        self.done = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.launched:
                driver.declineOffer(offer["id"])
                continue
            self.launched = True
            executor = {
                "executor_id": {"value": "pyexec"},
                "name": "pymesos test executor",
                "command": {"value": "%s %s" % (sys.executable, os.path.join(HERE, "executor.py"))},
                "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
            }
            task = {
                "task_id": {"value": "pytask"},
                "agent_id": offer["agent_id"],
                "name": "pytask",
                "executor": executor,
                "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
            }
            driver.launchTasks(offer["id"], [task])

    def statusUpdate(self, driver, update):
        print("update", update["state"], update.get("message"), flush=True)
        if update["state"] == "TASK_FINISHED":
            self.finished = True
        elif update["state"] not in ("TASK_STARTING", "TASK_RUNNING"):
            self.failure = "task ended %s: %s" % (update["state"], update.get("message"))
        self.check()

    def frameworkMessage(self, driver, executorId, agentId, message):
        self.message = decode_data(message)
        print("message from", executorId["value"], self.message, flush=True)
        self.check()

    def check(self):
        if self.failure or (self.finished and self.message is not None):
            self.done.set()


def main():
    scheduler = WithExecutor()
    driver = MesosSchedulerDriver(scheduler, {"user": "", "name": "pymesos-custom-executor"}, MASTER)
    driver.start()
    ok = scheduler.done.wait(60)
    driver.stop()
    driver.join()
    if not ok:
        print("timed out: finished=%s message=%r" % (scheduler.finished, scheduler.message))
        return 1
    if scheduler.failure:
        print("failure:", scheduler.failure)
        return 1
    if scheduler.message != b"hello from pytask":
        print("unexpected message %r" % scheduler.message)
        return 1
    print("custom executor task finished and its message arrived")
    return 0


if __name__ == "__main__":
    sys.exit(main())
