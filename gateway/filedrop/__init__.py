"""File drops: one file per window, with a manifest and its signature, to S3 or SFTP."""
