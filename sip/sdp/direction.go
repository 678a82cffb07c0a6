package sdp

// Direction is a media stream's direction attribute, seen from the side
// that wrote it (RFC 3264 §5.1, RFC 8866 §6.7). The zero value is SendRecv,
// the default when an SDP carries no direction attribute.
type Direction int

// The four direction attributes.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the attribute name ("sendrecv", …).
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Answer is the direction an answerer that is willing to do everything puts
// in its answer: sendonly becomes recvonly, recvonly becomes sendonly,
// inactive and sendrecv stay (RFC 3264 §6.1).
func (d Direction) Answer() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// Sends reports whether the side holding d sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the side holding d receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// restrict returns the direction that allows only what both d and other
// allow (used to combine our wish with what the peer permits).
func (d Direction) restrict(other Direction) Direction {
	return direction(d.Sends() && other.Sends(), d.Receives() && other.Receives())
}

func direction(send, recv bool) Direction {
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}

// parseDirection recognises a direction attribute key.
func parseDirection(key string) (Direction, bool) {
	switch key {
	case "sendrecv":
		return SendRecv, true
	case "sendonly":
		return SendOnly, true
	case "recvonly":
		return RecvOnly, true
	case "inactive":
		return Inactive, true
	}
	return SendRecv, false
}
