// Package udpbatch reads UDP datagrams in batches with recvmmsg(2) on
// Linux: one system call for up to Len() datagrams, nothing allocated per
// read. Both legs' socket readers use it — telegram/media's shared port
// and sip/rtpendpoint's Poller — and it imports neither. On other systems
// the package is empty: its callers have their own fallbacks there.
package udpbatch
