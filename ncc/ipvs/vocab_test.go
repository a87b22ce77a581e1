package ipvs

import (
	"testing"

	"github.com/seesawlb/seesaw/ncc/vocab"
)

// TestVocabMatchesHeader: the flags the engine writes into the desired
// state (package vocab, which may not import the header's constants) are
// the header's.
func TestVocabMatchesHeader(t *testing.T) {
	if got, want := vocab.SchedFallback, uint32(FlagSched1); got != want {
		t.Errorf("vocab.SchedFallback = %#x, want IP_VS_SVC_F_SCHED1 %#x", got, want)
	}
	if got, want := vocab.SchedPort, uint32(FlagSched2); got != want {
		t.Errorf("vocab.SchedPort = %#x, want IP_VS_SVC_F_SCHED2 %#x", got, want)
	}
}
