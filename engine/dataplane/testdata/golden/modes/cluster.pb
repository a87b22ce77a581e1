seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "DSR@test"
  entry_address { fqdn: "DSR." ipv4: "192.0.2.100/32" ipv6: "2001:db8:0:1::100/128" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 scheduler: RR mode: DSR healthcheck { type: TCP interval: 5 timeout: 2 } }
  vserver_entry { protocol: UDP port: 53 scheduler: SH mode: DSR one_packet: true }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "NAT@test"
  entry_address { fqdn: "NAT." ipv4: "192.0.2.101/32" ipv6: "2001:db8:0:1::101/128" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 scheduler: RR mode: NAT healthcheck { type: TCP interval: 5 timeout: 2 } }
  vserver_entry { protocol: UDP port: 53 scheduler: SH mode: NAT one_packet: true }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "TUN@test"
  entry_address { fqdn: "TUN." ipv4: "192.0.2.102/32" ipv6: "2001:db8:0:1::102/128" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 scheduler: RR mode: TUN healthcheck { type: TCP interval: 5 timeout: 2 } }
  vserver_entry { protocol: UDP port: 53 scheduler: SH mode: TUN one_packet: true }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
