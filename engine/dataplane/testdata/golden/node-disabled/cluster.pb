seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: BUILDING }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "a@test"
  entry_address { fqdn: "a." ipv4: "192.0.2.140/32" ipv6: "2001:db8:0:1::140/128" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 healthcheck { type: TCP } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "b@test"
  entry_address { fqdn: "b." ipv4: "192.0.2.141/32" status: TESTING }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 healthcheck { type: TCP } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
  backend { host { fqdn: "b3." ipv4: "198.51.100.13/24" status: DISABLED } }
}
vserver {
  name: "c@test"
  entry_address { fqdn: "c." ipv4: "192.0.2.142/32" status: STANDBY }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
