seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "d@test"
  entry_address { fqdn: "d." ipv4: "192.0.2.150/32" ipv6: "2001:db8:0:1::150/128" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 443 mode: DSR healthcheck { type: HTTPS mode: DSR send: "/healthz" tls_verify: false } }
  healthcheck { type: TCP port: 443 mode: DSR }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "t@test"
  entry_address { fqdn: "t." ipv4: "192.0.2.151/32" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: UDP port: 53 mode: TUN healthcheck { type: DNS mode: TUN method: "A" send: "example.com." receive: "192.0.2.1" } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "shared@test"
  entry_address { fqdn: "s." ipv4: "192.0.2.152/32" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 8443 mode: DSR healthcheck { type: TCP port: 10256 } }
  vserver_entry { protocol: TCP port: 8444 mode: DSR healthcheck { type: TCP port: 10256 } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
