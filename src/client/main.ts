// placeholder until the client lands (issue 3)
process.stderr.write('client: not built yet\n');
process.exit(1);
