"""A monitor-like child process that takes part in the election and prints each role it gets
(`python -m tests.ha.lock_holder URL VANTAGE`), and `takeover_once`: start one as leader, SIGKILL it,
time how long an in-process follower takes to lead. Used by the slow test and measure_failover.py."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time

from monitor.ha.election import Election, Role


async def _child(url: str, vantage: str) -> None:
    def say(role: Role) -> None:
        print(role.value, flush=True)

    await Election(url, vantage, on_change=say).run()


async def _wait_line(proc: asyncio.subprocess.Process, want: str, within_s: float) -> None:
    assert proc.stdout is not None

    async def read() -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the lock holder exited before saying {want!r}")
            if line.decode().strip() == want:
                return

    await asyncio.wait_for(read(), within_s)


async def takeover_once(url: str, *, retry_s: float = 1.0, vantage: str = "default") -> float:
    """Seconds from SIGKILL of a leading child process to an in-process follower leading."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.ha.lock_holder", url, vantage, stdout=asyncio.subprocess.PIPE, env=env
    )
    survivor = Election(url, vantage, retry_s=retry_s)
    task: asyncio.Task[None] | None = None
    try:
        await _wait_line(proc, "leader", 30)
        task = asyncio.create_task(survivor.run())
        first = survivor.attempts

        # one full try as a follower, and the next one under way
        await asyncio.wait_for(survivor.wait_until(lambda: survivor.attempts >= first + 2), 30)
        if survivor.role is not Role.FOLLOWER:
            raise RuntimeError("the survivor led while the child held the lock")
        # Kill at a random point of the survivor's retry cycle, as a real crash would.
        await asyncio.sleep(random.uniform(0, retry_s))
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.wait_for(survivor.wait_for(Role.LEADER), 30)
        return time.monotonic() - killed
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2]))
