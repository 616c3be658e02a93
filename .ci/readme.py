#!/usr/bin/env python3
"""Runs the README's commands as a newcomer would type them.

The commands are read from README.md itself, never copied here, so an edit of
the README is what CI runs next time:

1. "The two commands": every `cargo run` line of the section's sh blocks, in a
   scratch folder of the checkout. The first must create a ticket and print its
   reference and id; the second must start a server that answers /healthz
   and a GraphQL query (finding that ticket), then stop with status 0 on
   SIGTERM.
2. "The command line, a short tour": every `cargo run` line of the section's
   sh blocks, in order, against one fresh scratch database; each must succeed.
3. "Demo data": the same, where a line that starts the server must answer as
   in 1 (listing the demo's tickets) and stop on SIGTERM.

Usage: python3 .ci/readme.py [README.md]. Exits non-zero on the first failure,
saying which command failed and what it printed.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "target" / "readme-run"
BUILD_TIMEOUT = 900  # the first `cargo run` of a clean checkout compiles everything


def fail(message):
    print(f"README step FAILED: {message}", flush=True)
    sys.exit(1)


def section_commands(readme, heading):
    """The `cargo run` lines of the sh code blocks under `## heading`."""
    lines = readme.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == f"## {heading}")
    except StopIteration:
        fail(f'the README has no "## {heading}" section')
    commands, in_block = [], False
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("```"):
            in_block = not in_block and line.strip() in ("```sh", "```bash", "```shell")
            continue
        if in_block and line.strip().startswith("cargo run"):
            commands.append(line.strip())
    if not commands:
        fail(f'the "{heading}" section has no `cargo run` command')
    return commands


def run(command, cwd, timeout=BUILD_TIMEOUT):
    """Runs one README line with bash, as typed; returns its standard output."""
    print(f"$ {command}", flush=True)
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stdout.write(done.stderr[-4000:])
        fail(f"`{command}` exited with status {done.returncode}")
    return done.stdout


def is_server(command):
    """Whether a README line starts the server: `cargo run` with no
    subcommand (options only), or `cargo run ... -- serve ...`."""
    words = command.split("#", 1)[0].split()
    args = words[words.index("--") + 1:] if "--" in words else []
    return not args or args[0] == "serve" or args[0].startswith("-")


def http(method, url, body=None, token=None):
    request = urllib.request.Request(url, method=method, data=body)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


def check_server(command, cwd, reference=None):
    """Starts the server as the README says, checks /healthz and that a
    GraphQL query lists tickets (`reference` among them when given), then
    stops it with SIGTERM: it must exit with status 0."""
    print(f"$ {command}", flush=True)
    # `exec`: bash becomes cargo, which on Unix replaces itself with the
    # binary, so the SIGTERM below reaches the server itself.
    server = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        address, deadline = None, time.time() + BUILD_TIMEOUT
        while address is None and time.time() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            sys.stdout.write(line)
            found = re.match(r"listening on (http://\S+)", line)
            if found:
                address = found.group(1)
        if address is None:
            server.kill()
            server.wait()
            fail(f"`{command}` never said where it listens:\n{server.stderr.read()[-4000:]}")
        status, body = http("GET", f"{address}/healthz")
        print(f"GET /healthz -> {status} {body}")
        if status != 200 or body.strip() != "ok":
            fail("/healthz did not answer ok")
        status, body = http("GET", f"{address}/")
        print(f"GET / -> {status} ({len(body)} bytes)")
        if status != 200 or "/app/main.js" not in body:
            fail("/ did not serve the web client's page")
        token = run(
            "cargo run -q -- token --sub readme-ci --role ADMIN", cwd
        ).strip()
        query = "{ supportTickets { totalCount edges { node { reference request } } } }"
        status, body = http(
            "POST", f"{address}/graphql", json.dumps({"query": query}).encode(), token
        )
        print(f"POST /graphql {query} -> {status} {body[:200]}{'...' if len(body) > 200 else ''}")
        answer = json.loads(body)
        references = [e["node"]["reference"] for e in answer["data"]["supportTickets"]["edges"]]
        if answer.get("errors") or not references:
            fail("the server lists no ticket")
        if reference and reference not in references:
            fail(f"the server does not list {reference}, created by the first command")
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fail("the server did not stop within 30 s of SIGTERM")
        print(f"SIGTERM -> exit status {code}")
        if code != 0:
            fail(f"the server exited with status {code} on SIGTERM:\n{server.stderr.read()[-4000:]}")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)


def scratch(name):
    folder = SCRATCH / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def main():
    readme = (Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "README.md").read_text()

    print("== README: the two commands", flush=True)
    commands = section_commands(readme, "The two commands")
    if len(commands) < 2:
        fail(f'"The two commands" has {len(commands)} `cargo run` command(s), not two')
    first, server, *more = commands
    folder = scratch("two-commands")
    out = run(first, folder)
    created = re.fullmatch(r"(TCK-\d+) [0-9a-f-]{36}\n?", out)
    if not created:
        fail(f"`{first}` did not print a reference and an id: {out!r}")
    check_server(server, folder, created.group(1))
    for command in more:
        run(command, folder)

    print("== README: the command line, a short tour", flush=True)
    folder = scratch("short-tour")
    for command in section_commands(readme, "The command line, a short tour"):
        run(command, folder)

    print("== README: demo data", flush=True)
    folder = scratch("demo")
    for command in section_commands(readme, "Demo data"):
        if is_server(command):
            check_server(command, folder)
        else:
            run(command, folder)
    print("README step: every command ran as written")


if __name__ == "__main__":
    main()
