"""Unmodified pymesos 0.3.15 scheduler: launches N command tasks and exits 0
only if every one went TASK_RUNNING then TASK_FINISHED (acknowledged by the
driver's implicit acknowledgements)."""
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler

MASTER = sys.argv[1]
COUNT = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def scalar(name, value):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class TenTasks(Scheduler):
    def __init__(self):
        self.launched = 0
        self.seen = {}
        self.done = threading.Event()
        self.failed = None

    def resourceOffers(self, driver, offers):
        for offer in offers:
            cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
            mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
            tasks = []
            while self.launched < COUNT and cpus >= 0.1 and mem >= 32:
                i = self.launched
                tasks.append({
                    "task_id": {"value": "task-%d" % i},
                    "agent_id": offer["agent_id"],
                    "name": "hello-%d" % i,
                    "command": {"value": "echo hello-%d" % i},
                    "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
                })
                self.launched += 1
                cpus -= 0.1
                mem -= 32
            if tasks:
                driver.launchTasks(offer["id"], tasks)
            else:
                driver.declineOffer(offer["id"])

    def statusUpdate(self, driver, update):
        task = update["task_id"]["value"]
        state = update["state"]
        print("update", task, state, flush=True)
        self.seen.setdefault(task, []).append(state)
        if state in ("TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_KILLED", "TASK_DROPPED"):
            self.failed = "%s ended %s: %s" % (task, state, update.get("message"))
            self.done.set()
        finished = [t for t, s in self.seen.items() if "TASK_FINISHED" in s]
        if len(finished) == COUNT:
            self.done.set()


def main():
    scheduler = TenTasks()
    framework = {"user": "", "name": "pymesos-ten-tasks"}
    driver = MesosSchedulerDriver(scheduler, framework, MASTER)
    driver.start()
    ok = scheduler.done.wait(60)
    driver.stop()
    driver.join()
    if not ok:
        print("timed out; seen:", scheduler.seen)
        return 1
    if scheduler.failed:
        print("failure:", scheduler.failed)
        return 1
    for task, states in sorted(scheduler.seen.items()):
        if "TASK_RUNNING" not in states or states.index("TASK_RUNNING") > states.index("TASK_FINISHED"):
            print("task", task, "did not run before finishing:", states)
            return 1
    print("all %d tasks finished" % COUNT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
