package emu

// phoneVisible reports whether viewer may find a by phone number with
// contacts.resolvePhone. Telegram resolves a number only "if their privacy
// settings allow it" (core.telegram.org/method/contacts.resolvePhone): the
// phone-number rule (privacyKeyPhoneNumber) must admit the viewer. Importing
// the number as a contact (contacts.importContacts) is governed by a
// separate rule (privacyKeyAddedByPhone) whose default, everybody, the
// emulator always applies: that is why a client falls back to importing a
// number that resolvePhone does not find. Caller holds n.mu.
func phoneVisible(viewer, a *account) bool {
	return viewer.ID == a.ID || a.allows(a.PhonePrivacy, viewer.ID)
}
