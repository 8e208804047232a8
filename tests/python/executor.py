"""Unmodified pymesos custom executor: reports its task running, sends the
scheduler a framework message (saying whether it runs in a container with
its sandbox at the docker containerizer's /mnt/mesos/sandbox), then finishes
the task."""
import os
import threading
import time

from pymesos import Executor, MesosExecutorDriver, encode_data


class Echo(Executor):
    def launchTask(self, driver, task):
        def run():
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
            where = b" in a container" if os.path.isdir("/mnt/mesos/sandbox") else b""
            driver.sendFrameworkMessage(encode_data(b"hello from " + task["task_id"]["value"].encode() + where))
            time.sleep(0.5)
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED"})

        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    MesosExecutorDriver(Echo()).run()
