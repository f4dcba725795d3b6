package k3s_test

import (
	"context"
	"log"
	"os"

	"github.com/edgeline/edgeline/internal/k3s"
	"github.com/edgeline/edgeline/internal/remote"
)

// A VPS becomes the server, two Pis behind a factory's jump host join as edge agents, and
// one of them is removed again.
func Example() {
	ctx := context.Background()
	install := k3s.Install{Version: "v1.33.4+k3s1"}

	vps, err := remote.Dial(ctx, remote.Config{Host: "203.0.113.7", User: "root", KeyFiles: []string{"/home/ops/.ssh/id_ed25519"}})
	if err != nil {
		log.Fatal(err)
	}
	defer vps.Close()
	server, err := k3s.InstallServer{Exec: vps, Log: os.Stderr, Config: k3s.ServerConfig{
		TLSSANs:        []string{"k3s.example.com", "203.0.113.7"},
		NodeExternalIP: "203.0.113.7",
		FlannelBackend: k3s.FlannelWireguardNative, FlannelExternalIP: true,
		Install: install,
	}}.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}

	bastion := remote.Config{Host: "bastion.berlin.example.com", User: "ops"}
	var pis []remote.Executor
	var nodes []string
	// Each Pi has a public address of its own (wireguard-native needs one per node).
	for addr, public := range map[string]string{"192.168.10.21": "198.51.100.21", "192.168.10.22": "198.51.100.22"} {
		pi, err := remote.Dial(ctx, remote.Config{Host: addr, User: "pi", UseAgent: true, Jump: []remote.Config{bastion}})
		if err != nil {
			log.Fatal(err)
		}
		defer pi.Close()
		res, err := k3s.JoinAgent{Exec: pi, Server: vps, ServerURL: "https://203.0.113.7:6443", Token: server.Token, Log: os.Stderr,
			Config: k3s.AgentConfig{Site: "berlin", NodeExternalIP: public, Install: install}}.Run(ctx)
		if err != nil {
			log.Fatal(err)
		}
		pis, nodes = append(pis, pi), append(nodes, res.NodeName)
	}

	err = k3s.RemoveAgent{Server: vps, Agent: pis[1], NodeName: nodes[1]}.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
}
