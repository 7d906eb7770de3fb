package procpod

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
)

// IPAllocator hands out the addresses of an IPv4 prefix (without its first and last), each
// to one pod at a time. It starts at a random offset and moves round-robin, so an address is
// not reused soon after its pod is gone and two harnesses sharing a prefix rarely collide.
type IPAllocator struct {
	mu     sync.Mutex
	base   uint32
	size   uint32 // usable addresses
	next   uint32
	inUse  map[uint32]bool
	prefix netip.Prefix
}

func NewIPAllocator(cidr string) (*IPAllocator, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, err
	}
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() > 30 {
		return nil, fmt.Errorf("%s: want an IPv4 prefix of at most /30", cidr)
	}
	a := p.Addr().As4()
	size := uint32(1)<<(32-p.Bits()) - 2
	return &IPAllocator{base: binary.BigEndian.Uint32(a[:]) + 1, size: size, next: rand.Uint32N(size),
		inUse: map[uint32]bool{}, prefix: p}, nil
}

func (a *IPAllocator) Prefix() netip.Prefix { return a.prefix }

// Allocate returns a free address.
func (a *IPAllocator) Allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range a.size {
		n := a.next
		a.next = (a.next + 1) % a.size
		if !a.inUse[n] {
			a.inUse[n] = true
			return a.addr(n), nil
		}
	}
	return "", fmt.Errorf("all %d addresses of %s are in use", a.size, a.prefix)
}

// Reserve marks an address in use (a pod this process finds already running with it).
func (a *IPAllocator) Reserve(ip string) bool {
	n, ok := a.index(ip)
	if !ok {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inUse[n] {
		return false
	}
	a.inUse[n] = true
	return true
}

func (a *IPAllocator) Release(ip string) {
	if n, ok := a.index(ip); ok {
		a.mu.Lock()
		delete(a.inUse, n)
		a.mu.Unlock()
	}
}

func (a *IPAllocator) index(ip string) (uint32, bool) {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() || !a.prefix.Contains(addr) {
		return 0, false
	}
	b := addr.As4()
	v := binary.BigEndian.Uint32(b[:])
	if v < a.base || v-a.base >= a.size {
		return 0, false
	}
	return v - a.base, true
}

func (a *IPAllocator) addr(n uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a.base+n)
	return netip.AddrFrom4(b).String()
}
