seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
vserver {
  name: "wm@test"
  entry_address { fqdn: "wm." ipv4: "192.0.2.120/32" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 server_low_watermark: 0.5 server_high_watermark: 0.75 healthcheck { type: TCP } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" status: PRODUCTION } }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" status: PRODUCTION } }
  backend { host { fqdn: "b3." ipv4: "198.51.100.13/24" status: PRODUCTION } }
  backend { host { fqdn: "b4." ipv4: "198.51.100.14/24" status: PRODUCTION } }
  backend { host { fqdn: "b5." ipv4: "198.51.100.15/24" status: PROPOSED } }
}
