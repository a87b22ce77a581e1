# The pair keeps connections: NAT without source NAT (keepalived's NAT) drops
# the replies IPVS did not translate and needs no conntrack; an mh service
# quiesces a failed or disabled destination instead of taking it out, so
# both nodes keep the same destination list in the same order.
seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "nat@test"
  entry_address { fqdn: "nat." ipv4: "192.0.2.130/32" ipv6: "2001:db8:0:1::130/128" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 mode: NAT source_nat: false scheduler: MH healthcheck { type: TCP } }
  vserver_entry { protocol: UDP port: 53 mode: NAT source_nat: false scheduler: RR healthcheck { type: UDP send: "x" receive: "x" } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
  backend { host { fqdn: "b3." ipv4: "198.51.100.13/24" status: TESTING } weight: 1 }
}
