# Edge nodes over SSH (internal/remote, internal/k3s, ansible/): real OpenSSH test hosts,
# sudo for the non-root login test, iproute2 for the jump host's network namespace,
# Debian's ansible for the Pi preparation playbook, and gnupg to sign the apt repository
# that stands in for Tailscale's (internal/apttest; dpkg-deb comes with dpkg), iptables for the
# metadata block of the VPS's cloud-init (infra/cloud).
APT_PACKAGES += openssh-server openssh-client ansible sudo iproute2 gnupg iptables
TEST_ENV     += EDGELINE_TEST_SSHD=/usr/sbin/sshd
ifneq ($(shell command -v ansible-playbook 2>/dev/null),)
TEST_ENV     += EDGELINE_TEST_ANSIBLE=ansible-playbook
endif
