package b2bua

import "testing"

type directoryAccount struct {
	Account
	known map[int64]Caller
}

func (d directoryAccount) Caller(id int64) (Caller, bool) {
	c, ok := d.known[id]
	return c, ok
}

// TestCallerOf: the account's directory names the caller when it knows
// them (and only under the id asked for); otherwise the id alone.
func TestCallerOf(t *testing.T) {
	acc := directoryAccount{known: map[int64]Caller{
		7: {ID: 7, Username: "alice_example", Phone: "15550001", FirstName: "Alice"},
		8: {ID: 9, Username: "mallory"}, // a cache entry under the wrong id
	}}
	if c := callerOf(acc, 7); c.Username != "alice_example" || c.Phone != "15550001" || c.FirstName != "Alice" {
		t.Errorf("known caller: %+v", c)
	}
	for _, id := range []int64{8, 10} {
		if c := callerOf(acc, id); c != (Caller{ID: id}) {
			t.Errorf("caller %d: %+v, want the id alone", id, c)
		}
	}
	if c := callerOf(directoryAccount{}.Account, 5); c != (Caller{ID: 5}) {
		t.Errorf("account without a directory: %+v", c)
	}
}
