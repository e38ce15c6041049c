#!/usr/bin/env python3
"""The session-store workload (seed 001 at scale) and its floor.

  sessions.py load  --port P --count N   N JSON sessions `session:<id>` (24 h TTL), one in
                                         five of organisation `org-0`
  sessions.py floor --port P --org ORG   select the sessions of ORG the way a plain Python
                                         client would: SCAN pages of 1 000, one pipelined
                                         GET per page, json.loads; prints the count
  sessions.py playbooks --out DIR --port P   flow's playbooks for the same selection

Needs the `redis` package (bench/sessions.sh installs it into a venv of its own).
"""
import argparse
import json
import os
import sys
import time

ORGS = 5
SESSION_TTL = 86400


def session(i, now_ms):
    return json.dumps(
        {
            "userId": f"user-{i:08d}",
            "organisationId": f"org-{i % ORGS}",
            "email": f"user{i}@example.com",
            "createdAt": now_ms - (i % 86400) * 1000,
            "lastSeenAt": now_ms - (i % 3600) * 1000,
            "roles": ["member"] if i % 7 else ["member", "admin"],
            "cognitoSub": f"{i:08x}-4c3b-4a9e-9f1d-{i * 7919 % 16**12:012x}",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        },
        separators=(",", ":"),
    )


def load(port, count):
    import redis

    client = redis.Redis(port=port)
    now_ms = int(time.time() * 1000)
    chunk = 10_000
    for start in range(0, count, chunk):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(count, start + chunk)):
            pipe.set(f"session:{i:08x}-{i * 2654435761 % 2**32:08x}", session(i, now_ms), ex=SESSION_TTL)
        pipe.execute()
    print(client.dbsize())


def floor(port, org):
    import redis

    client = redis.Redis(port=port)
    matched = []
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, match="session:*", count=1000)
        if keys:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            for key, raw in zip(keys, pipe.execute()):
                if raw is None:
                    continue
                try:
                    value = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(value, dict) and value.get("organisationId") == org:
                    matched.append(key)
        if cursor == 0:
            break
    print(len(set(matched)))


def playbooks(out, port):
    os.makedirs(out, exist_ok=True)
    step = (
        "    type: redis.delete\n"
        "    with:\n"
        f'      url: "redis://127.0.0.1:{port}"\n'
        '      pattern: "session:*"\n'
        "      where: value is mapping and value.organisationId == params.org\n"
    )
    header = "flow: 1\nname: {name}\nparams:\n  org: {{ type: string, default: org-0 }}\nsteps:\n"
    with open(os.path.join(out, "sessions-select.yaml"), "w") as f:
        f.write(header.format(name="sessions-select") + "  select:\n" + step + "      dry_run: true\n")
    with open(os.path.join(out, "sessions-purge.yaml"), "w") as f:
        f.write(header.format(name="sessions-purge") + "  purge:\n" + step)
    print(out)


p = argparse.ArgumentParser()
p.add_argument("what", choices=["load", "floor", "playbooks"])
p.add_argument("--port", type=int, required=True)
p.add_argument("--count", type=int, default=100_000)
p.add_argument("--org", default="org-0")
p.add_argument("--out", default="/tmp/flow-bench-sessions")
a = p.parse_args()
if a.what == "load":
    load(a.port, a.count)
elif a.what == "floor":
    floor(a.port, a.org)
else:
    playbooks(a.out, a.port)
sys.exit(0)
