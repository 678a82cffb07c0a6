package emu

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGramJS runs a stock third-party MTProto client, GramJS (npm package
// `telegram`, pinned in testdata/gramjs/package.json), against a Network:
// login by code and by 2FA password, resolving a user by phone and by
// username, and the MTProto part of a call between two such clients with
// matching key fingerprints. GramJS is on layer 198 (its tl/AllTLObjects
// LAYER) and reaches the emulator through obfuscated2 and full transports.
// In CI (CI=true) a missing node or node_modules fails the test; elsewhere
// it skips.
func TestGramJS(t *testing.T) {
	dir := filepath.Join("testdata", "gramjs")
	node, err := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "telegram", "package.json"))
	if err != nil || modErr != nil {
		msg := "node or testdata/gramjs/node_modules missing (run npm ci in telegram/emu/testdata/gramjs)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedWriter{w: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := ListenAndServe(ctx, Options{LoginCode: "13579", PrivateKey: testKey(t), Logger: logger}, []User{
		{Phone: "+30000000001", Username: "gjcaller", FirstName: "Caller"},
		{Phone: "+30000000002", Username: "gjcallee", FirstName: "Callee", Password: "pa55word"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = n.Close()
		if t.Failed() {
			t.Logf("emulator log:\n%s", logs.String())
		}
	}()
	cfg, _ := json.Marshal(map[string]any{
		"port":       n.Addr().Port(),
		"pem":        string(n.PublicKeyPEM()),
		"code":       "13579",
		"caller":     map[string]string{"phone": "+30000000001"},
		"callee":     map[string]string{"phone": "+30000000002", "password": "pa55word", "username": "gjcallee"},
		"timeoutSec": int(slowTimeout / time.Second),
	})
	rctx, rcancel := context.WithTimeout(ctx, slowTimeout+10*time.Second)
	defer rcancel()
	cmd := exec.CommandContext(rctx, node, "run.js", string(cfg))
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res struct {
		Error                         string
		Layer                         int
		Caller                        struct{ ID, Username string }
		Callee                        struct{ ID, Username string }
		ResolvePhone, ResolveUsername string
		Imported                      []string
		PhoneCallsAvailable           bool
		ConfirmedState                string
		Call                          struct {
			ID                                                      string
			FingerprintCaller, FingerprintCallee, FingerprintServer string
			GAHashOK                                                bool
			Connections                                             int
			DiscardReason                                           string
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.Error != "" || runErr != nil {
		t.Fatalf("gramjs: %v %s\nstdout: %s\nstderr: %s", runErr, res.Error, stdout.String(), stderr.String())
	}
	caller, _ := n.UserByPhone("+30000000001")
	callee, _ := n.UserByPhone("+30000000002")
	calleeID := strconv.FormatInt(callee.ID, 10)
	switch {
	case res.Layer == NativeLayer:
		t.Errorf("GramJS on layer %d, the emulator's own: the test proves nothing about other layers", res.Layer)
	case res.Caller.ID != strconv.FormatInt(caller.ID, 10) || res.Caller.Username != "gjcaller":
		t.Errorf("login by code: %+v", res.Caller)
	case res.Callee.ID != calleeID || res.Callee.Username != "gjcallee":
		t.Errorf("login with 2FA: %+v", res.Callee)
	case res.ResolvePhone != calleeID || res.ResolveUsername != calleeID:
		t.Errorf("resolve: by phone %s, by username %s, want %s", res.ResolvePhone, res.ResolveUsername, calleeID)
	case len(res.Imported) != 1 || res.Imported[0] != calleeID:
		t.Errorf("importContacts: %v", res.Imported)
	case !res.PhoneCallsAvailable:
		t.Error("userFull.phone_calls_available not seen")
	case res.ConfirmedState != "PhoneCall":
		t.Errorf("confirmCall answered %s", res.ConfirmedState)
	case res.Call.FingerprintCaller == "" || res.Call.FingerprintCaller != res.Call.FingerprintCallee ||
		res.Call.FingerprintServer != res.Call.FingerprintCaller:
		t.Errorf("key fingerprints differ: %+v", res.Call)
	case !res.Call.GAHashOK:
		t.Error("g_a does not match g_a_hash")
	case res.Call.DiscardReason != "PhoneCallDiscardReasonHangup":
		t.Errorf("discard reason %q", res.Call.DiscardReason)
	}
	id, _ := strconv.ParseInt(res.Call.ID, 10, 64)
	info, ok := n.Call(id)
	if !ok || info.State != CallDiscarded || strconv.FormatInt(info.KeyFingerprint, 10) != res.Call.FingerprintCaller {
		t.Errorf("server's record of the call: %+v", info)
	}
	if !strings.Contains(logs.String(), "obfuscated2/abridged") || !strings.Contains(logs.String(), "transport=full") {
		t.Error("GramJS did not use both the obfuscated2 and the full transport")
	}
}

// lockedWriter serializes writes from the emulator's goroutines and reads
// by the test.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
