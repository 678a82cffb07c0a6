package emu

import (
	"slices"
	"testing"
)

// TestConnectionIDs: reflector and TURN ids come from one sequence with the
// TURN id among the reflectors', as Telegram's phoneConnection and
// phoneConnectionWebrtc ids do, so that an engine numbering reflectors over
// every connection id (not tdesktop's CollectEndpointIds rule) is caught.
func TestConnectionIDs(t *testing.T) {
	for _, tt := range []struct {
		refl int
		turn bool
		want []int64
		tid  int64
	}{
		{0, false, nil, 0},
		{0, true, nil, 1},
		{1, false, []int64{1}, 0},
		{1, true, []int64{2}, 1},
		{2, true, []int64{1, 3}, 2},
		{3, true, []int64{1, 3, 4}, 2},
		{2, false, []int64{1, 2}, 0},
	} {
		refl, tid := connectionIDs(tt.refl, tt.turn)
		if !slices.Equal(refl, tt.want) || tid != tt.tid {
			t.Errorf("connectionIDs(%d, %v) = %v, %d; want %v, %d", tt.refl, tt.turn, refl, tid, tt.want, tt.tid)
		}
	}
	// The shared network (two reflectors and TURN) lists them so.
	n := shnet(t)
	if len(n.reflectors) != 2 || n.turn == nil {
		t.Fatal("shared network without two reflectors and TURN")
	}
	lo, hi := n.reflectors[0].id, n.reflectors[1].id
	if w := n.turn.connection().ID; !(lo < w && w < hi) {
		t.Errorf("TURN id %d does not sort between the reflector ids %d and %d", w, lo, hi)
	}
}
