// Command pause is the sandbox process of the test node's pods: it waits
// for SIGTERM or SIGINT. With an address argument it also answers every
// HTTP request with 200 "ok", a workload for the node's own tests.
//
//	pause [listen-address]
package main

import (
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		go func() {
			err := http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Write([]byte("ok\n"))
			}))
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}()
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
