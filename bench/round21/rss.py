"""This process's resident size and high-water mark (MB), from /proc/self/status."""


def status() -> tuple[int, int]:
    got = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                got[k] = int(v.split()[0]) // 1024
    return got["VmRSS"], got["VmHWM"]
