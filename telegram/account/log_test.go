package account

import (
	"log/slog"
	"os"
)

func testLogger() *slog.Logger {
	if os.Getenv("ACCOUNT_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
