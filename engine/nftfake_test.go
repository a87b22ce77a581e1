package engine

import (
	"github.com/seesawlb/seesaw/ncc/nft"
	"github.com/seesawlb/seesaw/ncc/nft/nfttest"
)

// newNFTFake opens the NCC's nftables over a wire-level fake kernel.
func newNFTFake() (*nfttest.Kernel, func() (*nft.Reconciler, error)) {
	k := nfttest.New()
	return k, func() (*nft.Reconciler, error) { return k.Reconciler(nil) }
}
