seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "fwm@test"
  entry_address { fqdn: "fwm." ipv4: "192.0.2.110/32" ipv6: "2001:db8:0:1::110/128" status: PRODUCTION }
  rp: "ops@test"
  use_fwm: true
  vserver_entry { protocol: TCP port: 80 scheduler: WLC mode: DSR persistence: 300 }
  vserver_entry { protocol: TCP port: 443 scheduler: WLC mode: DSR persistence: 300 }
  healthcheck { type: HTTP port: 8080 send: "/healthz" }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "fwmnat@test"
  entry_address { fqdn: "fwmnat." ipv4: "192.0.2.111/32" status: PRODUCTION }
  rp: "ops@test"
  use_fwm: true
  vserver_entry { protocol: UDP port: 5000 scheduler: MH mode: NAT }
  vserver_entry { protocol: UDP port: 5001 scheduler: MH mode: NAT }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
