"""Unmodified pymesos custom executor: reports its task running, sends the
scheduler a framework message, then finishes the task."""
import threading
import time

from pymesos import Executor, MesosExecutorDriver, encode_data


class Echo(Executor):
    def launchTask(self, driver, task):
        def run():
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
            driver.sendFrameworkMessage(encode_data(b"hello from " + task["task_id"]["value"].encode()))
            time.sleep(0.5)
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED"})

        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    MesosExecutorDriver(Echo()).run()
