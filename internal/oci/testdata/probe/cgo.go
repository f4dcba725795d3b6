//go:build cgo

package main

// #include <unistd.h>
import "C"

func init() { withCgo = C.getpid() > 0 }
