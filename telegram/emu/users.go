package emu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/gotd/td/tg"
)

// Privacy is a Telegram privacy rule: who may do something to a user.
type Privacy int

// Privacy values. The zero value is Everybody.
const (
	Everybody Privacy = iota
	Contacts
	Nobody
)

// String returns the YAML spelling of p.
func (p Privacy) String() string {
	switch p {
	case Everybody:
		return "everybody"
	case Contacts:
		return "contacts"
	case Nobody:
		return "nobody"
	}
	return fmt.Sprintf("Privacy(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p Privacy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: everybody, contacts,
// nobody.
func (p *Privacy) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "everybody", "":
		*p = Everybody
	case "contacts":
		*p = Contacts
	case "nobody":
		*p = Nobody
	default:
		return fmt.Errorf("privacy %q: want everybody, contacts or nobody", b)
	}
	return nil
}

// User is one Telegram account of the emulated network.
type User struct {
	// ID is the user id; AddUser assigns one when zero.
	ID int64 `yaml:"id"`
	// AccessHash is the user's access hash (the same for every viewer);
	// AddUser assigns a random one when zero.
	AccessHash int64 `yaml:"access_hash"`
	// Phone is the login phone number, digits with an optional leading +.
	Phone string `yaml:"phone"`
	// Username is the public username without @, may be empty.
	Username  string `yaml:"username"`
	FirstName string `yaml:"first_name"`
	LastName  string `yaml:"last_name"`
	// Password is the 2FA cloud password; empty means none.
	Password string `yaml:"password"`
	// CallPrivacy says who may call this user (default everybody).
	CallPrivacy Privacy `yaml:"call_privacy"`
	// P2P says with whom this user's calls may go peer-to-peer; a call gets
	// p2p_allowed only when both parties' rules allow the other.
	P2P Privacy `yaml:"p2p"`
	// PhonePrivacy says who may find this user by number with
	// contacts.resolvePhone (see phoneVisible); importing the number as a
	// contact always finds them.
	PhonePrivacy Privacy `yaml:"phone_privacy"`
	// Contacts are the ids of this user's contacts (one direction).
	Contacts []int64 `yaml:"contacts"`
	// Blocked are the ids of users this user has blocked.
	Blocked []int64 `yaml:"blocked"`
	// Outdated makes every call to or from this user fail with
	// PARTICIPANT_VERSION_OUTDATED.
	Outdated bool `yaml:"outdated"`
}

// account is a User plus server state. Guarded by Network.mu.
type account struct {
	User
	srp *srpVerifier // nil without password
}

func (a *account) hasContact(id int64) bool { return slices.Contains(a.Contacts, id) }
func (a *account) blocks(id int64) bool     { return slices.Contains(a.Blocked, id) }

// allows reports whether rule p of this account admits user id.
func (a *account) allows(p Privacy, id int64) bool {
	switch p {
	case Everybody:
		return true
	case Contacts:
		return a.hasContact(id)
	}
	return false
}

// normalizePhone keeps the digits of a phone number.
func normalizePhone(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// AddUser registers u, filling ID and AccessHash when zero, and returns the
// stored user. Phone is required; phone, username and id must be unique.
func (n *Network) AddUser(u User) (User, error) {
	u.Phone = normalizePhone(u.Phone)
	if u.Phone == "" {
		return User{}, errors.New("emu: user needs a phone number")
	}
	u.Username = strings.TrimPrefix(u.Username, "@")
	u.Contacts = slices.Clone(u.Contacts)
	u.Blocked = slices.Clone(u.Blocked)
	var verifier *srpVerifier
	if u.Password != "" {
		v, err := newSRPVerifier(n.opts.Random, u.Password)
		if err != nil {
			return User{}, err
		}
		verifier = v
	}
	if u.AccessHash == 0 {
		h, err := randomInt63(n.opts.Random)
		if err != nil {
			return User{}, err
		}
		u.AccessHash = h
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if u.ID == 0 {
		for n.users[n.nextUserID] != nil {
			n.nextUserID++
		}
		u.ID = n.nextUserID
		n.nextUserID++
	}
	if u.ID < 0 {
		return User{}, fmt.Errorf("emu: user id %d: must be positive", u.ID)
	}
	if n.users[u.ID] != nil {
		return User{}, fmt.Errorf("emu: user id %d already exists", u.ID)
	}
	if n.byPhone[u.Phone] != nil {
		return User{}, fmt.Errorf("emu: phone +%s already registered", u.Phone)
	}
	lname := strings.ToLower(u.Username)
	if lname != "" && n.byUsername[lname] != nil {
		return User{}, fmt.Errorf("emu: username @%s already taken", u.Username)
	}
	a := &account{User: u, srp: verifier}
	n.users[u.ID] = a
	n.byPhone[u.Phone] = a
	if lname != "" {
		n.byUsername[lname] = a
	}
	return a.publicCopy(), nil
}

// User returns the stored user with the given id.
func (n *Network) User(id int64) (User, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.users[id]
	if a == nil {
		return User{}, false
	}
	return a.publicCopy(), true
}

// UserByPhone returns the stored user with the given phone number.
func (n *Network) UserByPhone(phone string) (User, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.byPhone[normalizePhone(phone)]
	if a == nil {
		return User{}, false
	}
	return a.publicCopy(), true
}

func (a *account) publicCopy() User {
	u := a.User
	u.Contacts = slices.Clone(u.Contacts)
	u.Blocked = slices.Clone(u.Blocked)
	return u
}

// view is user a as viewer sees it. Caller holds n.mu.
func (n *Network) viewLocked(viewer int64, a *account) *tg.User {
	u := &tg.User{
		ID:         a.ID,
		AccessHash: a.AccessHash,
		FirstName:  a.FirstName,
		LastName:   a.LastName,
		Username:   a.Username,
		Phone:      a.Phone,
		Self:       viewer == a.ID,
		Status:     &tg.UserStatusRecently{},
	}
	if v := n.users[viewer]; v != nil && v.hasContact(a.ID) {
		u.Contact = true
		u.MutualContact = a.hasContact(viewer)
	}
	u.SetFlags()
	return u
}

// viewsLocked returns the users with the given ids as viewer sees them.
func (n *Network) viewsLocked(viewer int64, ids ...int64) []tg.UserClass {
	var out []tg.UserClass
	for _, id := range ids {
		if a := n.users[id]; a != nil {
			out = append(out, n.viewLocked(viewer, a))
		}
	}
	return out
}

// usersFile is the YAML layout LoadUsers reads.
type usersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads users from a YAML file of the form
//
//	users:
//	  - phone: "+10000000001"
//	    username: alice
//	    first_name: Alice
//	    password: secret        # 2FA, optional
//	    call_privacy: contacts  # everybody | contacts | nobody
//	    p2p: nobody
//	    contacts: [100000002]
//	    blocked: []
//	    outdated: false
//
// Decoding is strict: an unknown key or a wrong type is an error naming the
// line.
func LoadUsers(path string) ([]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emu: users file: %w", err)
	}
	var f usersFile
	dec := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField(), yaml.Strict())
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("emu: users file %s: %s", path, yaml.FormatError(err, false, true))
	}
	return f.Users, nil
}

// randomInt63 returns a random positive int64.
func randomInt63(r io.Reader) (int64, error) {
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("emu: random: %w", err)
		}
		v := int64(binary.LittleEndian.Uint64(b[:]) >> 1)
		if v != 0 {
			return v, nil
		}
	}
}
