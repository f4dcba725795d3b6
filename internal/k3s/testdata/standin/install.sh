#!/bin/sh
# Stand-in for the official k3s install script (https://get.k3s.io), used only by tests:
# no k3s binary can be obtained in the test environment. It records how it was called
# (arguments and INSTALL_K3S_*/K3S_* environment) and leaves behind the files of the real
# script that edgeline relies on: /usr/local/bin/k3s, the kubectl link, the uninstall
# script, and on a server the kubeconfig and node token. It starts no service.
set -e
rec=/var/lib/k3s-standin
mkdir -p "$rec"
if [ -e "$rec/fail-next" ]; then
  rm -f "$rec/fail-next"
  echo "[ERROR]  Failed to start k3s (stand-in failure for the test)" >&2
  exit 1
fi
{
  echo "args: $*"
  env | grep -E '^(INSTALL_K3S_|K3S_)' | LC_ALL=C sort
} > "$rec/install.last"
echo x >> "$rec/install.count"

cmd=$1
[ "$cmd" = server ] || [ "$cmd" = agent ] || { echo "[ERROR]  want server or agent, got '$cmd'" >&2; exit 1; }

if [ "$INSTALL_K3S_SKIP_DOWNLOAD" != true ]; then
  # The real script downloads the k3s release here.
  curl -fsSL -o /usr/local/bin/k3s "@BASE_URL@/k3s"
  chmod 0755 /usr/local/bin/k3s
fi
[ -x /usr/local/bin/k3s ] || { echo "[ERROR]  /usr/local/bin/k3s is missing" >&2; exit 1; }
ln -sf k3s /usr/local/bin/kubectl
[ -s /etc/rancher/k3s/config.yaml ] || { echo "[ERROR]  no config.yaml" >&2; exit 1; }

if [ "$cmd" = server ]; then
  mkdir -p /var/lib/rancher/k3s/server
  if [ ! -s /var/lib/rancher/k3s/server/node-token ]; then
    secret=$(sed -n 's/^token: "\(.*\)"$/\1/p' /etc/rancher/k3s/config.yaml)
    [ -n "$secret" ] || secret=generated-by-standin
    echo "K10standinca::server:$secret" > /var/lib/rancher/k3s/server/node-token
  fi
  cat > /etc/rancher/k3s/k3s.yaml <<'KC'
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: c3RhbmQtaW4=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
users:
- name: default
  user:
    client-certificate-data: c3RhbmQtaW4=
    client-key-data: c3RhbmQtaW4=
KC
  chmod 0600 /etc/rancher/k3s/k3s.yaml
  uninstall=/usr/local/bin/k3s-uninstall.sh
else
  uninstall=/usr/local/bin/k3s-agent-uninstall.sh
fi
cat > "$uninstall" <<'UN'
#!/bin/sh
# Stand-in for k3s's uninstall script: records the call, removes what install left.
echo "$0" >> /var/lib/k3s-standin/uninstall.log
rm -rf /etc/rancher/k3s /var/lib/rancher/k3s /usr/local/bin/k3s /usr/local/bin/kubectl
rm -f "$0"
UN
chmod 0755 "$uninstall"
echo "[INFO]  stand-in k3s $cmd installed"
