"""pymesos scheduler: kills a running task and expects TASK_KILLED."""
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler

MASTER = sys.argv[1]


class Killer(Scheduler):
    def __init__(self):
        self.launched = False
        self.states = []
        self.done = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.launched:
                driver.declineOffer(offer["id"])
                continue
            self.launched = True
            driver.launchTasks(offer["id"], [{
                "task_id": {"value": "sleeper"},
                "agent_id": offer["agent_id"],
                "name": "sleeper",
                "command": {"value": "sleep 1000"},
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                ],
            }])

    def statusUpdate(self, driver, update):
        state = update["state"]
        print("update", state, update.get("message"), flush=True)
        self.states.append(state)
        if state == "TASK_RUNNING":
            driver.killTask({"value": "sleeper"})
        elif state not in ("TASK_STARTING",):
            self.done.set()


def main():
    scheduler = Killer()
    driver = MesosSchedulerDriver(scheduler, {"user": "", "name": "pymesos-kill"}, MASTER)
    driver.start()
    ok = scheduler.done.wait(60)
    driver.stop()
    driver.join()
    if not ok or scheduler.states[-1:] != ["TASK_KILLED"]:
        print("expected TASK_KILLED, saw", scheduler.states)
        return 1
    print("task killed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
