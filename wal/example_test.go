package wal_test

import (
	"fmt"
	"io"
	"os"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/walship/walship/wal"
	"github.com/walship/walship/wal/record"
)

// Write a series and two scrapes' samples, then read them back.
func Example() {
	dir, _ := os.MkdirTemp("", "wal-example")
	defer os.RemoveAll(dir)

	w, err := wal.Open(dir, wal.Options{Compression: wal.Snappy})
	if err != nil {
		panic(err)
	}
	var enc record.Encoder
	recs := [][]byte{enc.Series(nil, []record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "node")}})}
	for ts := int64(1000); ts <= 2000; ts += 1000 {
		recs = append(recs, enc.Samples(nil, []record.RefSample{{Ref: 1, T: ts, V: 1}}))
		if err := w.Log(recs...); err != nil { // all or nothing
			panic(err)
		}
		recs = recs[:0]
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := wal.OpenReader(wal.OS, dir)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	var dec record.Decoder
	for r.Next() {
		rec := r.Record()
		switch dec.TypeOf(rec) {
		case record.Series:
			s, _ := dec.Series(rec, nil)
			fmt.Println("series", s[0].Ref, s[0].Labels)
		case record.Samples:
			s, _ := dec.Samples(rec, nil)
			fmt.Println("sample", s[0].Ref, s[0].T, s[0].V, "ends at", r.Position())
		}
	}
	if err := r.Err(); err != nil {
		panic(err)
	}
	// Output:
	// series 1 {__name__="up", job="node"}
	// sample 1 1000 1 ends at 00000000:67
	// sample 1 2000 1 ends at 00000000:97
}

// Tail the segment a writer is still writing: io.EOF means "not yet".
func ExampleLiveReader() {
	dir, _ := os.MkdirTemp("", "wal-example")
	defer os.RemoveAll(dir)
	w, _ := wal.Open(dir, wal.Options{})
	defer w.Close()

	f, _ := os.Open(wal.SegmentPath(dir, w.Segment()))
	defer f.Close()
	lr := wal.NewLiveReader(f, w.Segment(), 0)

	for i := 0; i < 2; i++ {
		w.Log([]byte(fmt.Sprintf("record %d", i)))
		for lr.Next() {
			fmt.Printf("%s\n", lr.Record())
		}
		fmt.Println("waiting:", lr.Err() == io.EOF)
	}
	// Output:
	// record 0
	// waiting: true
	// record 1
	// waiting: true
}
