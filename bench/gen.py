#!/usr/bin/env python3
"""Writes flow's playbooks for the peer benchmark's workloads (same names as
../shared/bench/ansible/gen.py): debug-N (N `log` steps), local-N (N `exec` of `true`),
redis-R (R `redis.command` PING against one redis-server), ssh-fanout-HxT (T `ssh.exec` of
`true`, each on H hosts at once; the hosts are aliases of the peer's loopback sshd in an
ssh_config written here), and debug-10000 for memory."""
import argparse
import os

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--ns", nargs="+", type=int, default=[10, 100, 500])
p.add_argument("--redis-tasks", type=int, default=100)
p.add_argument("--redis-port", type=int, default=6390)
p.add_argument("--hosts", type=int, default=10)
p.add_argument("--tasks", type=int, default=10)
p.add_argument("--ssh-state", default="/tmp/flow-bench-ssh")
p.add_argument("--ssh-port", type=int, default=2222)
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
# The peer's inventory names host1..hostH, all the loopback sshd: the same here, as aliases.
hosts = [f"host{i}" for i in range(1, a.hosts + 1)]
ssh_config = os.path.join(a.out, "ssh_config")
with open(ssh_config, "w") as f:
    f.write(
        f"Host {' '.join(hosts)}\n  HostName 127.0.0.1\n  Port {a.ssh_port}\n"
        f"  User {os.environ.get('USER') or 'root'}\n"
        f"  IdentityFile {a.ssh_state}/id_ed25519\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {a.ssh_state}/known_hosts\n"
    )
write(
    f"ssh-fanout-{a.hosts}x{a.tasks}",
    f"params:\n  hosts: {{ type: list, default: [{', '.join(hosts)}] }}\n"
    f'defaults:\n  ssh: {{ config: "{ssh_config}" }}\n',
    lambda i: '{ type: ssh.exec, for_each: params.hosts, concurrency: %d, with: { host: "{{ item }}", command: ["true"] } }'
    % a.hosts,
    a.tasks,
)
print(a.out)
