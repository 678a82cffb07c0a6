package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadStat reads the cumulative counters from the last line of a
// sipp -trace_stat file (semicolon-separated, a header line first).
func TestReadStat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stat.csv")
	csv := "StartTime;OutgoingCall(P);OutgoingCall(C);SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n" +
		"x;10;10;9;9;1;1;\n" +
		"x;0;7000;0;6526;0;474;\n"
	if err := os.WriteFile(p, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	a, c, f, err := readStat(p)
	if err != nil || a != 7000 || c != 6526 || f != 474 {
		t.Fatalf("readStat = %d, %d, %d, %v; want 7000, 6526, 474", a, c, f, err)
	}
	if err := os.WriteFile(p, []byte("StartTime;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := readStat(p); err == nil {
		t.Fatal("no error for a file without statistics")
	}
}
