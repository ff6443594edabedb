// Package demo is what `make run` needs to show the agent working on a
// machine with nothing else installed: a remote-write receiver that walship
// starts on loopback, the default configuration that makes the agent scrape
// itself and ship to that receiver, and a progress printer.
//
// # The story of a demo run
//
// The agent starts a Receiver on 127.0.0.1 (Receiver.Start), renders the
// embedded configuration with the receiver's URL and its own listen address
// (Config), and runs as usual: every scrape_interval it scrapes its own
// /metrics, writes the samples to its WAL, and the remote_write endpoint
// named "demo" reads them back from the WAL and sends them to the receiver.
// A Progress prints one line per interval with what each stage has done:
// scraped, written to the WAL, sent, and acknowledged by the receiver.
//
// # The receiver
//
// Receiver accepts Remote-Write 1.0 (prometheus.WriteRequest) and 2.0
// (io.prometheus.write.v2.Request) requests, snappy block compressed. It
// decodes every request fully and counts what it accepted; it stores
// nothing. Its answers follow the receiver side of the specification: 204 on
// success, with the X-Prometheus-Remote-Write-*-Written headers for 2.0; 415
// for a content type or encoding it does not know; 400 for a body that does
// not decode; 413 for a body over 32 MiB.
//
// # Concurrency
//
// Receiver serves requests concurrently and its Stats may be read from any
// goroutine at any time. Progress.Run is one goroutine, owned by its caller;
// the Counters functions are called from it.
package demo
