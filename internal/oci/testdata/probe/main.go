// Command probe reports how it runs: its user and group, whether it may write to / and
// to /tmp, and whether it was built with cgo (dynamically linked against libc).
package main

import (
	"fmt"
	"os"
)

var withCgo = false

func main() {
	fmt.Printf("uid=%d gid=%d cgo=%v\n", os.Getuid(), os.Getgid(), withCgo)
	fmt.Printf("root-write=%v\n", os.WriteFile("/probe", []byte("x"), 0o644) == nil)
	fmt.Printf("tmp-write=%v\n", os.WriteFile("/tmp/probe", []byte("x"), 0o644) == nil)
	for _, a := range os.Args[1:] {
		fmt.Printf("arg=%s\n", a)
	}
}
