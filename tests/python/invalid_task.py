"""pymesos scheduler: a task asking for more than the offer gets TASK_ERROR
(REASON_TASK_INVALID); the master keeps serving and a valid task after it
finishes."""
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler

MASTER = sys.argv[1]


def task(agent_id, name, cpus):
    return {
        "task_id": {"value": name},
        "agent_id": agent_id,
        "name": name,
        "command": {"value": "true"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
        ],
    }


class Greedy(Scheduler):
    def __init__(self):
        self.step = 0
        self.error = None
        self.finished = False
        self.done = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.step == 0:
                self.step = 1
                driver.launchTasks(offer["id"], [task(offer["agent_id"], "too-big", 1000)], {"refuse_seconds": 0.1})
            elif self.step == 2:
                self.step = 3
                driver.launchTasks(offer["id"], [task(offer["agent_id"], "fits", 0.1)])
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 0.1})

    def statusUpdate(self, driver, update):
        print("update", update["task_id"]["value"], update["state"], update.get("reason"), update.get("message"), flush=True)
        if update["task_id"]["value"] == "too-big":
            self.error = update
            self.step = 2
        elif update["state"] == "TASK_FINISHED":
            self.finished = True
            self.done.set()
        elif update["state"] not in ("TASK_STARTING", "TASK_RUNNING"):
            self.done.set()


def main():
    scheduler = Greedy()
    driver = MesosSchedulerDriver(scheduler, {"user": "", "name": "pymesos-invalid"}, MASTER)
    driver.start()
    ok = scheduler.done.wait(60)
    driver.stop()
    driver.join()
    error = scheduler.error or {}
    if error.get("state") != "TASK_ERROR" or error.get("reason") != "REASON_TASK_INVALID":
        print("expected TASK_ERROR/REASON_TASK_INVALID, got", error)
        return 1
    if "uuid" in error:
        print("a master-generated update must not ask for an acknowledgement")
        return 1
    if not ok or not scheduler.finished:
        print("the valid task after the invalid one did not finish")
        return 1
    print("invalid task rejected; master kept serving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
