package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReadStat reads the cumulative counters from the last line of a
// sipp -trace_stat file (semicolon-separated, a header line first).
func TestReadStat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stat.csv")
	csv := "StartTime;OutgoingCall(P);OutgoingCall(C);SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);Retransmissions(C);ResponseTime1(C);\n" +
		"x;10;10;9;9;1;1;0;00:00:00:001000;\n" +
		"x;0;7000;0;6526;0;474;812;00:00:01:013000;\n"
	if err := os.WriteFile(p, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := readStat(p)
	want := stats{attempts: 7000, completed: 6526, failed: 474, retrans: 812, answer: 1013 * time.Millisecond}
	if err != nil || st != want {
		t.Fatalf("readStat = %+v, %v; want %+v", st, err, want)
	}
	if err := os.WriteFile(p, []byte("StartTime;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readStat(p); err == nil {
		t.Fatal("no error for a file without statistics")
	}
}
