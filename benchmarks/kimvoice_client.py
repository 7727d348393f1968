"""The KimVoice client's own CPU per request: a call's four requests against `ivr sandbox`.

The sandbox runs as a child process, so the figure is the client's side alone: ours (parameters,
deadlines, retries, breaker, decoding), httpx's models, the transport, and the loopback syscalls.
`--tree DIR` imports `ivr` from another checkout (a `git worktree` of an older commit) to measure
the "before" on the same machine, one run after the other.

  python3 benchmarks/kimvoice_client.py --calls 2000 --concurrency 8 --repeat 3
  git worktree add /tmp/before 595e7f9
  python3 benchmarks/kimvoice_client.py --tree /tmp/before --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=2000, help="calls' worth of requests per run, 4 each (default 2000)")
    p.add_argument("--concurrency", type=int, default=8, help="calls in flight at once (default 8)")
    p.add_argument("--repeat", type=int, default=3, help="runs, each against a fresh sandbox (default 3)")
    p.add_argument("--tree", type=Path, help="import ivr from this checkout instead")
    options = p.parse_args()
    if options.calls < 1 or options.concurrency < 1 or options.repeat < 1:
        p.error("--calls, --concurrency and --repeat must be at least 1")
    return options


async def one_run(calls: int, concurrency: int) -> float:
    """Seconds of this process's CPU per call (four KimVoice requests)."""
    from _children import free_port, temporary_children, wait_ready

    from ivr.backends.kimvoice import KimVoiceClient
    from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

    port = free_port()
    with temporary_children("kimvoice-client-") as children:
        env = {**os.environ, "IVR_LOG_LEVEL": "warning"}
        sandbox = children.start("sandbox", [sys.executable, "-m", "ivr", "sandbox", "--host", "127.0.0.1",
                                             "--port", str(port)], env)
        await wait_ready(sandbox, port, "/sandbox/knobs", timeout=30)
        async with KimVoiceClient(f"http://127.0.0.1:{port}", SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET) as kimvoice:

            async def call() -> None:
                await kimvoice.health_check(timeout=2)
                holders = await kimvoice.get_key_holders(123456, "2580")
                holder = holders.key_holders[0]
                member, pod = holder.primary_member, holder.pods[0]
                await kimvoice.validate_key_holder(123456, member, pod, "Update")
                await kimvoice.get_update_code(123456, member, member, pod)

            async def caller(n: int) -> None:
                for _ in range(n):
                    await call()

            await caller(20)  # the token, the first connections
            share, extra = divmod(calls, concurrency)
            started = time.process_time()
            await asyncio.gather(*(caller(share + (i < extra)) for i in range(concurrency)))
            return (time.process_time() - started) / calls


def main() -> int:
    options = parse_args()
    if options.tree:
        sys.path.insert(0, str(options.tree.resolve()))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(options.tree.resolve()),
                                                                 os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(HERE))
    import ivr
    from ivr.logging import configure_logging

    configure_logging(level="warning")
    print(f"ivr from {Path(ivr.__file__).parent}; {options.calls} calls x 4 requests, "
          f"{options.concurrency} at once, {options.repeat} runs")
    per_call = [asyncio.run(one_run(options.calls, options.concurrency)) for _ in range(options.repeat)]
    for seconds in per_call:
        print(f"  client CPU {seconds * 1e3:.3f} ms/call = {seconds * 1e6 / 4:.0f} us/request")
    print(f"  median     {statistics.median(per_call) * 1e3:.3f} ms/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
