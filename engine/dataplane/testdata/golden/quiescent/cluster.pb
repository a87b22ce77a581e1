seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "q@test"
  entry_address { fqdn: "q." ipv4: "192.0.2.130/32" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 quiescent: true healthcheck { type: TCP } }
  vserver_entry { protocol: TCP port: 81 healthcheck { type: TCP } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
