// Command receiver is the benchmark's remote-write endpoint in a process
// of its own (see package receiver). It prints the address it listens on
// as its first line of standard output.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/walship/walship/bench/receiver"
)

func main() {
	app := kingpin.New("receiver", "A remote-write endpoint that decodes every request and checks what arrived.")
	listen := app.Flag("listen", "Address to listen on.").Default("127.0.0.1:0").String()
	kingpin.MustParse(app.Parse(os.Args[1:]))

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(2)
	}
	fmt.Println(l.Addr().String())
	if err := http.Serve(l, receiver.New().Handler()); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}
