// Package gotdquiet is the logger tgsip gives gotd's clients: gotd's own
// records are not kept (the account logs what an operator needs), as with
// gotd's default log.Nop. Unlike log.Nop it is its own child logger, so
// gotd's per-request log.With (on every RPC and message) does not wrap it
// in a new logger holding a copy of the attributes: garbage and CPU at
// every call's signaling otherwise (docs/performance.md, memory and load
// run, session 5).
package gotdquiet

import (
	"context"

	gotdlog "github.com/gotd/log"
)

// Logger discards every record and is its own child.
type Logger struct{}

var _ gotdlog.Logger = Logger{}

// Enabled reports false for every level.
func (Logger) Enabled(context.Context, gotdlog.Level) bool { return false }

// Log discards the record.
func (Logger) Log(context.Context, gotdlog.Level, string, ...gotdlog.Attr) {}

// With returns the logger itself.
func (q Logger) With(...gotdlog.Attr) gotdlog.Logger { return q }
