"""The scripted AMI peer (`support.ami_peer`) frames the wire as Asterisk does."""

from __future__ import annotations

import asyncio

from support.ami_peer import EOL, SECRET, ScriptedAmi


async def test_the_peer_greets_logs_in_and_answers_ping() -> None:
    async with ScriptedAmi() as peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        assert (await reader.readline()).startswith(b"Asterisk Call Manager/")
        writer.write(f"Action: Login{EOL}ActionID: 1{EOL}Username: keybox{EOL}Secret: {SECRET}{EOL}{EOL}".encode())
        answer = await reader.readuntil((EOL + EOL).encode())
        assert b"Response: Success" in answer and b"ActionID: 1" in answer
        assert b"Event: FullyBooted" in await reader.readuntil((EOL + EOL).encode())
        writer.write(f"Action: Ping{EOL}ActionID: 2{EOL}{EOL}".encode())
        assert b"Ping: Pong" in await reader.readuntil((EOL + EOL).encode())
        writer.close()
        assert [a.name for a in peer.received] == ["login", "ping"]
