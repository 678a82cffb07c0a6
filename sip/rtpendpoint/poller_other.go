//go:build !linux

package rtpendpoint

import "errors"

// Poller is unavailable outside Linux (see poller.go).
type Poller struct{}

// NewPoller fails outside Linux.
func NewPoller(PollerOptions) (*Poller, error) {
	return nil, errors.New("rtpendpoint: no poller on this system")
}

// Close does nothing.
func (p *Poller) Close() {}

func (p *Poller) add(*Endpoint, *push) error { return errors.New("rtpendpoint: no poller") }
func (p *Poller) remove(*Endpoint)           {}
