package govlake.delta;

import io.delta.storage.HadoopFileSystemLogStore;
import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Iterator;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Delta's LogStore for S3 through S3A, safe with writers in other processes: a new commit file is put with
 * {@code If-None-Match: *} (S3's conditional write), so that of two writers committing one version only one
 * succeeds and the other gets {@link java.nio.file.FileAlreadyExistsException}, which Delta answers by
 * checking for conflicts and trying the next version. This is how delta-rs commits on S3, so delta-spark and
 * delta-rs may write one table at once.
 *
 * <p>Delta 4.4's own {@code S3SingleDriverLogStore} checks that the version does not exist and then puts it
 * unconditionally (safe only inside one JVM), and S3A makes a put conditional only when the caller asks
 * through {@code FileSystem.createFile(path)} with the mandatory option
 * {@code fs.option.create.conditional.overwrite} (Hadoop 3.5), which this class does.
 *
 * <p>A put whose answer is lost may be retried by the AWS SDK and then be refused by S3 because the first
 * attempt did succeed: when a conditional put fails and the version exists, the file is read back, and if
 * it holds exactly the bytes written here the commit is ours and succeeded.
 *
 * <p>Settings: {@code spark.delta.logStore.s3.impl} and {@code spark.delta.logStore.s3a.impl} set to this
 * class, with S3A's {@code fs.s3a.create.conditional.enabled=true}; the store must honour
 * {@code If-None-Match} (AWS S3 since 2024, MinIO, Ceph RGW, moto).
 */
public class S3ConditionalPutLogStore extends HadoopFileSystemLogStore {

  /** S3A's mandatory option for a put with {@code If-None-Match: *} (Hadoop 3.5's CreateFileOptionKeys). */
  public static final String CONDITIONAL_CREATE = "fs.option.create.conditional.overwrite";

  public S3ConditionalPutLogStore(Configuration initHadoopConf) {
    super(initHadoopConf);
  }

  @Override
  public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf)
      throws IOException {
    FileSystem fs = path.getFileSystem(hadoopConf);
    byte[] bytes = content(actions);
    if (overwrite) {
      try (FSDataOutputStream out = fs.create(path, true)) {
        out.write(bytes);
      }
      return;
    }
    try {
      // createFile's builder is a raw type: build() answers an Object
      FSDataOutputStream out =
          (FSDataOutputStream) fs.createFile(path).overwrite(false).must(CONDITIONAL_CREATE, true).build();
      try {
        out.write(bytes);
      } finally {
        out.close(); // the put (and its precondition) happens here
      }
    } catch (IOException refused) {
      byte[] there = readIfExists(fs, path);
      if (there == null) {
        throw refused; // not a lost race: a real failure
      }
      if (Arrays.equals(there, bytes)) {
        return; // our own put, whose answer was lost and whose retry was refused
      }
      java.nio.file.FileAlreadyExistsException taken =
          new java.nio.file.FileAlreadyExistsException(path.toString());
      taken.initCause(refused);
      throw taken;
    }
  }

  /** S3's put is atomic: a commit file is seen whole or not at all. */
  @Override
  public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
    return false;
  }

  /** The commit file's bytes as HadoopFileSystemLogStore writes them: every action, then a newline. */
  static byte[] content(Iterator<String> actions) {
    ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    while (actions.hasNext()) {
      buffer.writeBytes((actions.next() + "\n").getBytes(StandardCharsets.UTF_8));
    }
    return buffer.toByteArray();
  }

  private static byte[] readIfExists(FileSystem fs, Path path) throws IOException {
    try (InputStream in = fs.open(path)) {
      return in.readAllBytes();
    } catch (FileNotFoundException absent) {
      return null;
    }
  }
}
