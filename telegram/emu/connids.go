package emu

// connectionIDs numbers the relays listed in phoneCall.connections the way
// Telegram does: phoneConnection (reflector) and phoneConnectionWebrtc
// (STUN/TURN) entries take their ids from one sequence, so a webrtc id can
// sort between reflector ids (research/tgcalls.md §5.1). Clients number the
// reflectors over the phoneConnection ids only (tdesktop calls_call.cpp
// CollectEndpointIds); to keep engines honest about that, the TURN server
// takes the id in the middle of the reflectors' (before the only reflector
// when there is one), so counting it shifts at least one reflector.
func connectionIDs(reflectors int, turn bool) (refl []int64, turnID int64) {
	const first = 1 // the sequence's first id
	next := int64(first)
	at := reflectors / 2 // the TURN server's place among the reflectors
	for i := range reflectors {
		if turn && i == at {
			turnID = next
			next++
		}
		refl = append(refl, next)
		next++
	}
	if turn && turnID == 0 {
		turnID = next
	}
	return refl, turnID
}
