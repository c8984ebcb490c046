"""Pod Security Standards, "restricted" profile (which includes "baseline"), checked offline.

Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/ (policy
version "latest" as of Kubernetes 1.34). `violations(spec, annotations)` returns one line per
failed control, naming the field, like Pod Security Admission's messages.
"""

from __future__ import annotations

from typing import Any

Spec = dict[str, Any]

# Baseline: sysctls that are namespaced and isolated from the node and other pods.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
# Baseline: capabilities that may be added (restricted narrows this to NET_BIND_SERVICE).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
# Restricted: the only volume sources allowed.
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SECCOMP_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})


def _containers(spec: Spec) -> list[tuple[str, Spec]]:
    found = []
    for field in ("containers", "initContainers", "ephemeralContainers"):
        found += [(f"{field}[{c['name']}]", c) for c in spec.get(field, [])]
    return found


def baseline_violations(spec: Spec, annotations: dict[str, str]) -> list[str]:
    out: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    # HostProcess
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("securityContext.windowsOptions.hostProcess must not be true")
    # Host namespaces
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"{field} must not be true")
    # HostPath volumes
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            out.append(f"volumes[{volume['name']}].hostPath is forbidden")
    # AppArmor (annotation form and field form)
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            out.append(f"annotation {key}={value} is not runtime/default or localhost/*")
    # Sysctls
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            out.append(f"sysctl {sysctl['name']} is not in the safe set")
    contexts = [("securityContext", pod_sc)] + [
        (f"{where}.securityContext", c.get("securityContext") or {})
        for where, c in _containers(spec)
    ]
    for where, sc in contexts:
        apparmor = sc.get("appArmorProfile")
        if apparmor and apparmor.get("type") not in APPARMOR_ALLOWED:
            out.append(f"{where}.appArmorProfile.type must be RuntimeDefault or Localhost")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES:
            out.append(f"{where}.seLinuxOptions.type {selinux['type']!r} is not allowed")
        for field in ("user", "role"):
            if selinux.get(field):
                out.append(f"{where}.seLinuxOptions.{field} must not be set")
        # Seccomp (baseline): never Unconfined
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"{where}.seccompProfile.type must not be Unconfined")
    for where, container in _containers(spec):
        sc = container.get("securityContext") or {}
        # Privileged containers
        if sc.get("privileged"):
            out.append(f"{where}.securityContext.privileged must not be true")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"{where}.securityContext.windowsOptions.hostProcess must not be true")
        # Capabilities (baseline)
        for cap in (sc.get("capabilities") or {}).get("add", []):
            if cap not in BASELINE_CAPABILITIES:
                out.append(f"{where} adds capability {cap}")
        # Host ports
        for port in container.get("ports", []):
            if port.get("hostPort", 0) not in (0, None):
                out.append(f"{where} uses hostPort {port['hostPort']}")
        # /proc mount type
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{where}.securityContext.procMount must be Default")
    return out


def restricted_violations(spec: Spec, annotations: dict[str, str]) -> list[str]:
    out = baseline_violations(spec, annotations)
    pod_sc = spec.get("securityContext") or {}
    # Volume types
    for volume in spec.get("volumes", []):
        sources = set(volume) - {"name"}
        if not sources <= RESTRICTED_VOLUMES:
            out.append(f"volumes[{volume['name']}] uses {sorted(sources - RESTRICTED_VOLUMES)}")
    # Running as non-root user: no 0 at pod level
    if pod_sc.get("runAsUser") == 0:
        out.append("securityContext.runAsUser must not be 0")
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_ALLOWED:
        out.append("securityContext.seccompProfile.type must be RuntimeDefault or Localhost")
    for where, container in _containers(spec):
        sc = container.get("securityContext") or {}
        # Privilege escalation: must be explicitly false
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}.securityContext.allowPrivilegeEscalation must be false")
        # Running as non-root: container true, or unset with the pod's true (never false)
        if sc.get("runAsNonRoot") is False or not (sc.get("runAsNonRoot") is True or pod_non_root):
            out.append(f"{where}.securityContext.runAsNonRoot must be true (here or on the pod)")
        if sc.get("runAsUser") == 0:
            out.append(f"{where}.securityContext.runAsUser must not be 0")
        # Seccomp: the container's own profile, or the pod's, must be RuntimeDefault/Localhost
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in SECCOMP_ALLOWED:
            out.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost")
        # Capabilities: drop ALL, add at most NET_BIND_SERVICE
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in capabilities.get("drop", []):
            out.append(f"{where}.securityContext.capabilities.drop must include ALL")
        for cap in capabilities.get("add", []):
            if cap != "NET_BIND_SERVICE":
                out.append(f"{where} may add only NET_BIND_SERVICE, adds {cap}")
    return out
