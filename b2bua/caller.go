package b2bua

// The caller of a Telegram -> SIP call as the account knows them: the
// engine names the caller by id only (phoneCallRequested.admin_id), but
// the same update carries the user (updates.users), which the account's
// user cache keeps (telegram/account's harvest of every update), so the
// PBX gets the username, phone and name (X-Telegram-*, From) too.

// CallerDirectory is an Account that knows the Telegram users it has met.
// Accounts without it present callers by id only.
type CallerDirectory interface {
	// Caller returns what the account knows of user id.
	Caller(id int64) (Caller, bool)
}

// Caller is the user from the account's cache (account.Account.Known).
func (a accountAdapter) Caller(id int64) (Caller, bool) {
	p, ok := a.Known(id)
	if !ok {
		return Caller{}, false
	}
	return Caller{ID: p.ID, Username: p.Username, Phone: p.Phone, FirstName: p.FirstName, LastName: p.LastName}, true
}

// callerOf is user id as acc knows them, or the id alone.
func callerOf(acc Account, id int64) Caller {
	if d, ok := acc.(CallerDirectory); ok {
		if c, ok := d.Caller(id); ok && c.ID == id {
			return c
		}
	}
	return Caller{ID: id}
}
