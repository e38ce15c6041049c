#!/usr/bin/env python3
"""Writes flow's playbooks for the peer benchmark's workloads (same names as
../shared/bench/ansible/gen.py): debug-N (N `log` steps), local-N (N `exec` of `true`),
redis-R (R `redis.command` PING against one redis-server), and debug-10000 for memory."""
import argparse
import os

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--ns", nargs="+", type=int, default=[10, 100, 500])
p.add_argument("--redis-tasks", type=int, default=100)
p.add_argument("--redis-port", type=int, default=6390)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)


def write(name, header, step, n):
    with open(os.path.join(a.out, f"{name}.yaml"), "w") as f:
        f.write(f"flow: 1\nname: {name}\n{header}steps:\n")
        for i in range(n):
            f.write(f"  t{i}: {step(i)}\n")


for n in a.ns + [10000]:
    write(f"debug-{n}", "", lambda i: '{ type: log, with: { message: "task %d" } }' % i, n)
for n in a.ns:
    write(f"local-{n}", "", lambda i: '{ type: exec, with: { command: ["true"] } }', n)
write(
    f"redis-{a.redis_tasks}",
    f'defaults:\n  redis: {{ url: "redis://127.0.0.1:{a.redis_port}" }}\n',
    lambda i: "{ type: redis.command, with: { command: [PING] } }",
    a.redis_tasks,
)
print(a.out)
