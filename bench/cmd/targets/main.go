// Command targets serves a shape's series as scrape targets for the agent
// senders, in a process of its own (see package targets). It prints the
// address it listens on as its first line of standard output.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/walship/walship/bench/shape"
	"github.com/walship/walship/bench/targets"
)

func main() {
	app := kingpin.New("targets", "Scrape targets serving a benchmark shape's series.")
	listen := app.Flag("listen", "Address to listen on.").Default("127.0.0.1:0").String()
	name := app.Flag("shape", "The shape: 100kx100, 1Mx5, ... (see e2e run --help).").Required().String()
	kingpin.MustParse(app.Parse(os.Args[1:]))

	s, err := shape.Parse(*name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "targets:", err)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "targets:", err)
		os.Exit(2)
	}
	fmt.Println(l.Addr().String())
	if err := http.Serve(l, targets.New(s).Handler()); err != nil {
		fmt.Fprintln(os.Stderr, "targets:", err)
		os.Exit(1)
	}
}
