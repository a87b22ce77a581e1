package dataplane

import (
	"hash/fnv"
	"slices"
	"strings"

	"github.com/seesawlb/seesaw/ncc/vocab"
)

// marks allocates firewall marks to keys. A key keeps the mark it had
// (from the previous Model, or what the engine kept across a restart)
// while it is wanted; a new key gets the mark its hash points at in its
// range, or the next free one, so that the same config gives the same marks
// even without a record. A mark changed under a running service would be a
// rewrite of that service and of its rules, so stability is the point.
type marks struct {
	prev   map[string]uint32
	wanted map[string]bool
	marks  map[string]uint32
}

func newMarks(prev map[string]uint32) *marks {
	return &marks{prev: prev, wanted: map[string]bool{}}
}

func (m *marks) want(key string) { m.wanted[key] = true }

// get is the mark of a wanted key, after settle.
func (m *marks) get(key string) uint32 { return m.marks[key] }

// rangeOf is the base and size of a key's range.
func rangeOf(key string) (base, size uint32) {
	if strings.HasPrefix(key, "vserver ") {
		return vocab.VserverMarkBase, vocab.VserverMarks
	}
	return vocab.CheckMarkBase, vocab.CheckMarks
}

// settle gives every wanted key its mark: first the earlier marks that are
// still in their range and not taken, then the new keys in sorted order.
func (m *marks) settle() {
	m.marks = map[string]uint32{}
	taken := map[uint32]bool{}
	keys := make([]string, 0, len(m.wanted))
	for k := range m.wanted {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var fresh []string
	for _, k := range keys {
		base, size := rangeOf(k)
		if mk, ok := m.prev[k]; ok && mk >= base && mk < base+size && !taken[mk] {
			m.marks[k], taken[mk] = mk, true
			continue
		}
		fresh = append(fresh, k)
	}
	for _, k := range fresh {
		base, size := rangeOf(k)
		h := fnv.New32a()
		h.Write([]byte(k))
		off := h.Sum32() % size
		for i := uint32(0); i < size; i++ {
			mk := base + (off+i)%size
			if !taken[mk] {
				m.marks[k], taken[mk] = mk, true
				break
			}
		}
		// A full range (8,000 use_fwm vservers in a family, a million
		// DSR/TUN backends) leaves the key without a mark: 0, which the
		// caller treats as none.
	}
}
