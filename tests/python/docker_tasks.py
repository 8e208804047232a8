"""pymesos scheduler: DOCKER command tasks on an agent with
--containerizers=docker,mesos. One finishes, one exits 3, one names an image
that does not exist, and a plain command task runs beside them."""
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler

MASTER = sys.argv[1]
IMAGE = sys.argv[2]

EXPECTED = {
    "ok": ("TASK_FINISHED", None),
    "exit3": ("TASK_FAILED", "status 3"),
    "missing": ("TASK_FAILED", "no-such-image"),
    "plain": ("TASK_FINISHED", None),
}


def resources():
    return [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
    ]


def docker_task(offer, task_id, image, command):
    return {
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "name": task_id,
        "command": {"value": command},
        "container": {
            "type": "DOCKER",
            "docker": {"image": image, "network": "NONE"},
        },
        "resources": resources(),
    }


class DockerScheduler(Scheduler):
    def __init__(self):
        self.launched = False
        self.final = {}
        self.done = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.launched:
                driver.declineOffer(offer["id"])
                continue
            self.launched = True
            driver.launchTasks(offer["id"], [
                docker_task(offer, "ok", IMAGE, "echo hello from docker"),
                docker_task(offer, "exit3", IMAGE, "exit 3"),
                docker_task(offer, "missing", "mesos-test/no-such-image:1", "true"),
                {
                    "task_id": {"value": "plain"},
                    "agent_id": offer["agent_id"],
                    "name": "plain",
                    "command": {"value": "true"},
                    "resources": resources(),
                },
            ])

    def statusUpdate(self, driver, update):
        task_id = update["task_id"]["value"]
        state = update["state"]
        print("update", task_id, state, update.get("message"), flush=True)
        if state not in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
            self.final[task_id] = (state, update.get("message") or "")
            if len(self.final) == len(EXPECTED):
                self.done.set()


def main():
    scheduler = DockerScheduler()
    driver = MesosSchedulerDriver(scheduler, {"user": "", "name": "pymesos-docker"}, MASTER)
    driver.start()
    ok = scheduler.done.wait(120)
    driver.stop()
    driver.join()
    if not ok:
        print("not every task ended:", scheduler.final)
        return 1
    failed = False
    for task_id, (state, needle) in EXPECTED.items():
        seen, message = scheduler.final[task_id]
        if seen != state or (needle and needle not in message):
            print("task", task_id, "expected", state, needle, "saw", seen, message)
            failed = True
    if failed:
        return 1
    print("docker tasks ended as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
