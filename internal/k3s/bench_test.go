package k3s

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgeline/edgeline/internal/remote"
	"github.com/edgeline/edgeline/internal/remote/sshtest"
)

// BenchmarkJoinFanout joins 1 and then 20 agents (sshd test hosts on 127.0.0.11-30:2222,
// stand-in k3s as in the tests) in the same iteration, all side by side as the Pulumi
// engine runs the K3sAgent resources, and reports the ratio of the two wall times: with
// the joins fanned out, 20 hosts should take at most about twice as long as one.
// "connect+join" dials the hosts too; "join" reuses open connections; "run", the
// baseline, runs one trivial command per host over open connections.
func BenchmarkJoinFanout(b *testing.B) {
	sshtest.SSHD(b)
	keys := sshtest.NewKeys(b)
	srvHost := sshtest.Start(b, keys, sshtest.Options{})
	var hosts []*sshtest.Host
	for i := 11; i <= 30; i++ {
		hosts = append(hosts, sshtest.Start(b, keys, sshtest.Options{IP: fmt.Sprintf("127.0.0.%d", i), Port: 2222}))
	}
	kh := sshtest.WriteKnownHosts(b, append([]*sshtest.Host{srvHost}, hosts...)...)
	cfg := func(h *sshtest.Host) remote.Config {
		return remote.Config{Host: h.IP, Port: h.Port, User: "root", KeyFiles: []string{keys.ED25519}, KnownHostsFile: kh}
	}
	ctx := context.Background()
	srv, err := remote.Dial(ctx, cfg(srvHost))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	sres, err := InstallServer{Exec: srv, Config: ServerConfig{Install: Install{AirGap: airGap}}}.Run(ctx)
	if err != nil {
		b.Fatal(err)
	}
	dialAll := func(hs []*sshtest.Host) []remote.Executor {
		exs := make([]remote.Executor, len(hs))
		var wg sync.WaitGroup
		for i, h := range hs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ex, err := remote.Dial(ctx, cfg(h))
				if err != nil {
					b.Error(err)
					return
				}
				exs[i] = ex
			}()
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		return exs
	}
	joins := func(exs []remote.Executor) []JoinAgent {
		var js []JoinAgent
		for i, ex := range exs {
			js = append(js, JoinAgent{Exec: ex, Server: srv, ServerURL: "https://203.0.113.7:6443", Token: sres.Token,
				Config: AgentConfig{NodeName: fmt.Sprintf("pi-%02d", i+1), Site: "bench", Install: Install{AirGap: airGap}}})
		}
		return js
	}
	closeAll := func(exs []remote.Executor) {
		for _, ex := range exs {
			ex.Close()
		}
	}
	// reset makes the hosts fresh again: no k3s, no recorded state.
	reset := func(exs []remote.Executor) {
		for _, ex := range exs {
			if _, err := ex.Run(ctx, remote.Command{Cmd: "rm -rf /etc/rancher/k3s /usr/local/bin/k3s* /var/lib/k3s-standin"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	open := dialAll(hosts)
	defer closeAll(open)
	measure := func(n int, connect bool) time.Duration {
		reset(open[:n])
		start := time.Now()
		exs := open[:n]
		if connect {
			exs = dialAll(hosts[:n])
			defer closeAll(exs)
		}
		var wg sync.WaitGroup
		for _, j := range joins(exs) {
			wg.Go(func() {
				if _, err := j.Run(ctx); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		return time.Since(start)
	}
	// Baseline: the same fan-out of the cheapest remote operation, one shell command per
	// host, shows what the machine allows before any k3s work.
	baseline := func(n int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for _, ex := range open[:n] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := ex.Run(ctx, remote.Command{Cmd: "true"}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	var one, twenty, oneC, twentyC, oneB, twentyB time.Duration
	b.ResetTimer()
	for range b.N {
		oneB += baseline(1)
		twentyB += baseline(20)
		one += measure(1, false)
		twenty += measure(20, false)
		oneC += measure(1, true)
		twentyC += measure(20, true)
	}
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(ms(one), "ms/join-1")
	b.ReportMetric(ms(twenty), "ms/join-20")
	b.ReportMetric(float64(twenty)/float64(one), "ratio-join")
	b.ReportMetric(ms(oneC), "ms/connect+join-1")
	b.ReportMetric(ms(twentyC), "ms/connect+join-20")
	b.ReportMetric(float64(twentyC)/float64(oneC), "ratio-connect+join")
	b.ReportMetric(ms(oneB), "ms/run-1")
	b.ReportMetric(ms(twentyB), "ms/run-20")
	b.ReportMetric(float64(twentyB)/float64(oneB), "ratio-run")
	b.ReportMetric(0, "ns/op")
}
