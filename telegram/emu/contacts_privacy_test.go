package emu

import (
	"testing"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// TestResolvePhonePrivacy: a user who hides their number is not found by
// contacts.resolvePhone, but importing the number finds them.
func TestResolvePhonePrivacy(t *testing.T) {
	alice := loggedIn(t, "frank") // whose contacts no other test checks
	n := shnet(t)
	hidden, err := n.AddUser(User{Phone: "+10000000099", FirstName: "Hidden", PhonePrivacy: Nobody})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := alice.api.ContactsResolvePhone(ctx, "+10000000099"); !tgerr.Is(err, "PHONE_NOT_OCCUPIED") {
		t.Fatalf("hidden number resolved: %v", err)
	}
	imp, err := alice.api.ContactsImportContacts(ctx, []tg.InputPhoneContact{{ClientID: 1, Phone: "+10000000099", FirstName: "H"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(imp.Users) != 1 || imp.Users[0].(*tg.User).ID != hidden.ID || imp.Users[0].(*tg.User).AccessHash != hidden.AccessHash {
		t.Fatalf("import %+v", imp)
	}
	// Contacts-only numbers resolve for the user's contacts.
	if _, err := n.AddUser(User{Phone: "+10000000098", FirstName: "Friend", PhonePrivacy: Contacts, Contacts: []int64{alice.self.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.api.ContactsResolvePhone(ctx, "+10000000098"); err != nil {
		t.Errorf("a contact's number: %v", err)
	}
}
